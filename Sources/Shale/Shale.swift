// The one module embedders import: the engine (`Database`), the sharded store
// (`ShardedStore`) with its row and slot layout (`StoredEntry`), its secondary indexes'
// public types (`IndexDefinition`, `IndexQuery`, ...), replication (`ReplicationBacklog`,
// `ReplicaApplier`), errors and options, and the file-system seam.
@_exported import KVBase
@_exported import KVEngine
@_exported import KVFileSystem
@_exported import KVIndex
@_exported import KVLayout
@_exported import KVReplication
@_exported import KVStore
