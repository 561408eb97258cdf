import ArgumentParser
import Foundation
import KVCluster

/// The entry point: the options every subcommand takes (`--etcd`, `--cluster`) may also come
/// before the subcommand, as in `kvcluster --etcd URL --cluster NAME create ...`; they are
/// moved behind it for parsing.
@main
enum KVClusterMain {
    static func main() async {
        await KVClusterCommand.main(reordered(Array(CommandLine.arguments.dropFirst())))
    }

    /// `arguments` with leading `--etcd`/`--cluster` options moved behind the subcommand name.
    static func reordered(_ arguments: [String]) -> [String] {
        var rest = arguments[...]
        var leading: [String] = []
        while let first = rest.first, first.hasPrefix("--etcd") || first.hasPrefix("--cluster") {
            leading.append(rest.removeFirst())
            if !first.contains("="), let value = rest.first {
                leading.append(value)
                rest.removeFirst()
            }
        }
        guard let sub = rest.first else { return leading }
        return [sub] + leading + rest.dropFirst()
    }
}

/// `kvcluster`: creates and inspects Shale clusters whose layout is held in etcd.
struct KVClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvcluster",
        abstract: "Create, inspect and change Shale clusters (layout and leases held in etcd).",
        subcommands: [Create.self, Status.self, Move.self, Failover.self, AddNode.self, RemoveNode.self]
    )

    /// Options every subcommand takes.
    struct Common: ParsableArguments {
        @Option(name: .customLong("etcd"), help: "etcd endpoints, comma-separated (http://host:port,...).")
        var etcd: String = "http://127.0.0.1:2379"

        @Option(name: .customLong("cluster"), help: "The cluster name (kvserver's --cluster-name).")
        var cluster: String

        func client() -> EtcdClient {
            EtcdClient(endpoints: etcd.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        }

        /// The cluster's etcd keys.
        var keys: ClusterKeys { ClusterKeys(cluster: cluster) }

        /// Runs `body` with an etcd client that is shut down afterwards; a failure is printed
        /// and becomes exit code 1.
        func withEtcd<T>(_ body: (EtcdClient) async throws -> T) async throws -> T {
            let etcd = client()
            do {
                let result = try await body(etcd)
                await etcd.shutdown()
                return result
            } catch {
                await etcd.shutdown()
                throw KVClusterCommand.fail("\(error)")
            }
        }

        func validate() throws {
            if cluster.isEmpty || cluster.contains("/") { throw ValidationError("--cluster must be a non-empty name without '/'") }
            if etcd.split(separator: ",").isEmpty { throw ValidationError("--etcd needs at least one endpoint") }
        }
    }

    /// Parses `host:port,host:port`.
    static func addresses(_ list: String?) throws -> [(host: String, port: Int)] {
        guard let list, !list.isEmpty else { return [] }
        return try list.split(separator: ",").map { item in
            guard let colon = item.lastIndex(of: ":"), let port = Int(item[item.index(after: colon)...]), (1...65535).contains(port),
                colon != item.startIndex
            else { throw ValidationError("'\(item)' is not host:port") }
            return (String(item[..<colon]), port)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a cluster: assign the 16,384 slots to the leaders and write the layout to etcd.",
            discussion: """
                Asks every node its id (CLUSTER MYID), splits the slots evenly into contiguous ranges \
                in the order the leaders are given (the i-th follower follows the i-th leader), \
                writes the layout only if the cluster has none yet, then waits until every node \
                reports cluster_state:ok in CLUSTER INFO.
                """
        )

        @OptionGroup var common: Common

        @Option(help: "The leaders, host:port comma-separated.")
        var leaders: String

        @Option(help: "The followers, host:port comma-separated (the i-th follows the i-th leader).")
        var followers: String?

        @Flag(help: "Do not wait for the nodes to report cluster_state:ok.")
        var noWait = false

        @Option(help: "Seconds to wait for cluster_state:ok.")
        var timeout: Int = 60

        func run() async throws {
            let leaderAddresses = try KVClusterCommand.addresses(leaders)
            let followerAddresses = try KVClusterCommand.addresses(followers)
            if leaderAddresses.isEmpty { throw ValidationError("--leaders needs at least one host:port") }
            func identify(_ a: (host: String, port: Int)) throws -> ClusterNode {
                ClusterNode(id: try RESPClient(host: a.host, port: a.port).emptyNodeID(), host: a.host, port: a.port)
            }
            let topology: ClusterTopology
            do {
                topology = try ClusterTopology.initial(leaders: leaderAddresses.map(identify), followers: followerAddresses.map(identify))
            } catch {
                throw KVClusterCommand.fail("\(error)")
            }
            let keys = common.keys
            let revision = try await common.withEtcd { try await ClusterAdmin.create(topology, etcd: $0, keys: keys) }
            print("cluster \(keys.cluster) created at etcd revision \(revision):")
            for (i, s) in topology.shards.enumerated() {
                let leader = topology.node(s.leader)?.address ?? s.leader
                let fs = s.followers.compactMap { topology.node($0)?.address }
                print("  shard \(i): slots \(s.slots.map { "\($0[0])-\($0[1])" }.joined(separator: ",")) leader \(leader)"
                    + (fs.isEmpty ? "" : " followers \(fs.joined(separator: ","))"))
            }
            if noWait { return }
            try await waitUntilOK(topology.nodes)
        }

        func waitUntilOK(_ nodes: [ClusterNode]) async throws {
            let deadline = ContinuousClock.now + .seconds(max(1, timeout))
            var pending = nodes
            var last: [String: String] = [:]
            while true {
                pending = pending.filter { n in
                    do {
                        let state = try RESPClient(host: n.host, port: n.port, timeoutSeconds: 2).clusterInfo()["cluster_state"] ?? "?"
                        last[n.address] = "cluster_state:\(state)"
                        return state != "ok"
                    } catch {
                        last[n.address] = "\(error)"
                        return true
                    }
                }
                if pending.isEmpty {
                    print("every node reports cluster_state:ok")
                    return
                }
                if ContinuousClock.now >= deadline {
                    let report = pending.map { "  \($0.address): \(last[$0.address] ?? "no answer")" }.joined(separator: "\n")
                    throw KVClusterCommand.fail("timed out after \(timeout) s waiting for cluster_state:ok on:\n\(report)", code: 3)
                }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the shards (leader, followers, slots) and which nodes are alive.")

        @OptionGroup var common: Common

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let status = try await common.withEtcd { try await ClusterAdmin.status(etcd: $0, keys: common.keys) }
            if json {
                print(String(decoding: try status.json(), as: UTF8.self))
            } else {
                print(status.text(), terminator: "")
            }
            if status.topology == nil { throw ExitCode(1) }
        }
    }

    struct Failover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a follower its shard's leader: the leader's writes pause, the follower catches up, the layout switches; no acknowledged write is lost.")

        @OptionGroup var common: Common

        @Option(help: "The follower to promote, host:port.")
        var to: String

        @Option(help: "Seconds to wait for the follower to catch up and for each node to take its role.")
        var timeout: Int = 10

        func run() async throws {
            guard let target = try KVClusterCommand.addresses(to).first else { throw ValidationError("--to needs host:port") }
            guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be between 1 and 3600") }
            try await common.withEtcd { try await ClusterAdmin.failover(to: target, etcd: $0, keys: common.keys, timeout: timeout) }
            print("\(to) leads its shard")
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move slots to a leader online; returns when they are served there and gone from the old owners.",
            discussion: """
                For each current owner in turn: the target copies the slots' rows and streams the \
                owner's later writes; then the owner holds writes to the slots, the target catches \
                up, the owner answers -ASK to the target, the layout in etcd gives the slots to the \
                target, and the old owner deletes its rows. Exits non-zero with the reason when a \
                step fails (before the switch, nothing is changed).
                """
        )

        @OptionGroup var common: Common

        @Option(help: "The slots: first-last or slot, comma-separated (0-1999,5000).")
        var slots: String

        @Option(help: "The leader that is to serve them, host:port.")
        var to: String

        @Option(help: "Seconds to wait for each owner's copy.")
        var timeout: Int = 600

        @Option(help: "The longest a switch may hold writes, milliseconds.")
        var pauseMs: Int = 5000

        func run() async throws {
            guard let target = try KVClusterCommand.addresses(to).first else { throw ValidationError("--to needs host:port") }
            guard (1...86400).contains(timeout) else { throw ValidationError("--timeout must be between 1 and 86400") }
            guard (100...600_000).contains(pauseMs) else { throw ValidationError("--pause-ms must be between 100 and 600000") }
            let ranges: [[Int]]
            do {
                ranges = try ClusterTopology.parseRanges([slots])
            } catch {
                throw ValidationError("\(error)")
            }
            if ranges.isEmpty { throw ValidationError("--slots names no slot") }
            let report = try await common.withEtcd {
                try await ClusterAdmin.move(
                    slots: ranges, to: target, etcd: $0, keys: common.keys, timeout: timeout, pauseMillis: pauseMs,
                    progress: { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) })
            }
            let rate = report.seconds > 0 ? Double(report.keys) / report.seconds : 0
            print("moved \(report.slots) slots to \(to): \(report.keys) rows copied in \(String(format: "%.2f", report.seconds)) s "
                + "(\(Int(rate)) rows/s), writes held at most \(String(format: "%.1f", report.longestPauseMillis)) ms, "
                + "\(report.purgedKeys) rows deleted from the old owners")
        }
    }

    struct AddNode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-node",
            abstract: "Add a running kvserver to the layout: as a new leader without slots (then move slots to it), or as a follower.")

        @OptionGroup var common: Common

        @Option(help: "The node to add, host:port (a kvserver started with --cluster-etcd).")
        var node: String

        @Option(help: "Make it a follower of this leader, host:port.")
        var follow: String?

        func run() async throws {
            guard let address = try KVClusterCommand.addresses(node).first else { throw ValidationError("--node needs host:port") }
            let leader = try KVClusterCommand.addresses(follow).first
            let t = try await common.withEtcd { try await ClusterAdmin.addNode(address, follow: leader, etcd: $0, keys: common.keys) }
            print("\(node) added as \(follow.map { "a follower of \($0)" } ?? "a leader without slots") (layout epoch \(t.epoch))")
        }
    }

    struct RemoveNode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-node",
            abstract: "Remove a node from the layout: a follower, or a leader whose shard serves no slots and has no followers.")

        @OptionGroup var common: Common

        @Option(help: "The node to remove, host:port.")
        var node: String

        func run() async throws {
            guard let address = try KVClusterCommand.addresses(node).first else { throw ValidationError("--node needs host:port") }
            let t = try await common.withEtcd { try await ClusterAdmin.removeNode(address, etcd: $0, keys: common.keys) }
            print("\(node) removed (layout epoch \(t.epoch))")
        }
    }

    /// Prints `message` to standard error and returns the exit code to throw.
    static func fail(_ message: String, code: Int32 = 1) -> ExitCode {
        FileHandle.standardError.write(Data("kvcluster: \(message)\n".utf8))
        return ExitCode(code)
    }
}
