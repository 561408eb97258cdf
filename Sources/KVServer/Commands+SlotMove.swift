import KVCluster
import KVProtocol
import KVStore
import NIOCore

/// ASKING and `SHALE.SLOTMOVE`, the node's side of a slot move (``SlotMoves``; the steps are
/// driven by `kvcluster move`, DESIGN.md "Slot moves"):
///
/// ```
/// SHALE.SLOTMOVE IMPORT host port range...      target: start copying the slots from the source
/// SHALE.SLOTMOVE STATUS                         both: field:value lines (role, state, keys, applied, ...)
/// SHALE.SLOTMOVE PAUSE host:port ms range...    source: writes to the slots wait; answers the
///                                               source's sequence per shard once no write is in flight
/// SHALE.SLOTMOVE FINISH                         target: stop copying (every write is here)
/// SHALE.SLOTMOVE HANDOFF                        source: requests for the slots get -ASK target
/// SHALE.SLOTMOVE CANCEL                         both: undo (the source serves again; the target
///                                               deletes what it copied)
/// ```
extension Commands {
    static let slotMoveCommands: [CommandSpec] = [
        CommandSpec("asking", 1, ["fast"]) { c in
            guard c.server.cluster != nil else { throw disabled }
            c.session.asking.store(true, ordering: .relaxed)
            return .ok
        },
        CommandSpec("shale.slotmove", -2, ["admin", "noscript"], subcommands: ["import", "status", "pause", "finish", "handoff", "cancel"]) { c in
            try slotMove(&c)
        },
    ]

    static func slotMove(_ c: inout CommandCall) throws -> RESPValue {
        guard let cluster = c.server.cluster else { throw disabled }
        let moves = cluster.moves
        let sub = RedisText.lower(c.args[1])
        func ranges(from first: Int) throws -> [Bool] {
            guard c.argc > first else { throw CommandError.wrongArity("shale.slotmove|" + sub) }
            do {
                return ClusterTopology.flags(try ClusterTopology.parseRanges(c.args[first...].map { String(decoding: $0, as: UTF8.self) }))
            } catch {
                throw CommandError("ERR \(error)")
            }
        }
        switch sub {
        case "status":
            guard c.argc == 2 else { throw CommandError.wrongArity("shale.slotmove|status") }
            return .bulk(moves.status())
        case "import":
            guard c.argc >= 5 else { throw CommandError.wrongArity("shale.slotmove|import") }
            guard let role = cluster.view.role, role.leader else { throw CommandError("ERR only a shard's leader imports slots") }
            let host = String(decoding: c.args[2], as: UTF8.self)
            let port = try RedisText.int(c.args[3])
            guard port > 0 && port <= 65535 else { throw CommandError("ERR Invalid port") }
            let slots = try ranges(from: 4)
            let owners = cluster.view.owners
            if owners.count == slots.count, slots.indices.contains(where: { slots[$0] && owners[$0] == role.shard }) {
                throw CommandError("ERR some of these slots are already served by this node")
            }
            try moves.startImport(slots: slots, importer: SlotImporter(server: c.server, host: host, port: Int(port), slots: slots))
            return .ok
        case "finish":
            guard c.argc == 2 else { throw CommandError.wrongArity("shale.slotmove|finish") }
            guard let importer = moves.importer else { throw CommandError("ERR no slot import is running on this node") }
            let p = importer.progress
            guard p.phase == .streaming else {
                throw CommandError("ERR the import is \(p.phase.rawValue)\(p.error.isEmpty ? "" : ": " + p.error)")
            }
            importer.requestStop()
            return .ok
        case "pause":
            guard c.argc >= 5 else { throw CommandError.wrongArity("shale.slotmove|pause") }
            guard let role = cluster.view.role, role.leader else { throw CommandError("ERR only a shard's leader moves slots") }
            let target = String(decoding: c.args[2], as: UTF8.self)
            let millis = try RedisText.int(c.args[3])
            guard millis > 0 else { throw CommandError("ERR the pause must be positive") }
            let slots = try ranges(from: 4)
            let owners = cluster.view.owners
            if owners.count == slots.count, slots.indices.contains(where: { slots[$0] && owners[$0] != role.shard }) {
                throw CommandError("ERR some of these slots are not served by this node")
            }
            let epoch = try moves.pause(slots: slots, target: target, millis: millis, loop: c.loop)
            let store = c.store
            @Sendable func sequences() -> RESPValue { .array(store.shardSequences.map { .integer(Int64($0)) }) }
            if moves.drained(epoch) { return sequences() }
            // Answer, without holding a thread, once the writes that passed their check before
            // the pause have finished (the last one's leave runs the waiter); then the
            // sequences cover them.
            let promise = c.loop.makePromise(of: RESPValue.self)
            moves.whenDrained(epoch) { promise.succeed(sequences()) }
            c.loop.scheduleTask(in: .milliseconds(min(millis, 10_000))) {
                if moves.cancelDrainWaiter() {
                    moves.cancelOutgoing()
                    promise.succeed(.simpleError("ERR writes in flight did not finish; the pause was lifted"))
                }
            }
            c.action = .later(promise.futureResult)
            return .nullBulk
        case "handoff":
            guard c.argc == 2 else { throw CommandError.wrongArity("shale.slotmove|handoff") }
            try moves.handOff()
            return .ok
        case "cancel":
            guard c.argc == 2 else { throw CommandError.wrongArity("shale.slotmove|cancel") }
            let outgoing = moves.cancelOutgoing()
            let incoming = moves.cancelIncoming()
            if let incoming { moves.purge(incoming, store: c.store) }
            return .integer(Int64((outgoing ? 1 : 0) + (incoming != nil ? 1 : 0)))
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "shale.slotmove")
        }
    }
}
