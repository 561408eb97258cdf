// The store's API speaks these types of the modules below it. They are re-exported here on
// purpose, so a user of the store (the server, an embedding application) imports KVStore
// alone:
// - KVBase: `KVError`, which every store call throws, and the clocks and threads the layers
//   share;
// - KVLayout and KVIndex: the store's own sub-layers (`StoredEntry`; `IndexDefinition`,
//   `IndexQuery`, `IndexInfo`, `IndexHit`, ...);
// - from KVEngine only the types in the store's signatures: the shards' `Options`, a write's
//   `Durability`, `WriteBatch` for `write(_:durability:)`, and `DatabaseStats` inside
//   `StoreStats`; from KVFileSystem the `FileSystem` protocol of `Options.fileSystem`.
@_exported import KVBase
@_exported import KVIndex
@_exported import KVLayout
@_exported import enum KVEngine.Durability
@_exported import struct KVEngine.DatabaseStats
@_exported import struct KVEngine.Options
@_exported import struct KVEngine.WriteBatch
@_exported import protocol KVFileSystem.FileSystem
