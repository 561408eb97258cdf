@_exported import KVEngine
