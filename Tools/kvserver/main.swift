#if canImport(Glibc)
import Glibc
#endif

// The Redis-protocol daemon is not implemented yet: this executable only reports that, so
// the README's first command builds everything it will need and says so plainly.
let message = """
    kvserver: the Redis-protocol server is not implemented in this version of Shale yet.
    The storage engine is available as the Shale library (Database, ShardedStore) and
    through kvbench.

    """
_ = message.withCString { write(2, $0, strlen($0)) }
exit(2)
