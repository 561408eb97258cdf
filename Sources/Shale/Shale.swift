// The one module embedders import: the engine (`Database`), the sharded store
// (`ShardedStore`), replication (`ReplicationBacklog`, `ReplicaApplier`), errors and options,
// and the file-system seam.
@_exported import KVBase
@_exported import KVEngine
@_exported import KVFileSystem
@_exported import KVReplication
@_exported import KVStore
