import KVBase
