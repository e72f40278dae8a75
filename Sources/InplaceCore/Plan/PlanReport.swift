/// `inplace plan`'s output: a few lines for people, and a stable JSON document for programs.
public enum PlanReport {
    /// The documented `--json` object (see README.md, "plan --json").
    public struct JSON: Encodable, Sendable {
        public struct Table: Encodable, Sendable {
            var database: String
            var table: String
            var create: Bool
            var create_database: Bool
            var recreate: Bool
            var keep: [TablePlan.Kept]
            /// Kept parts detached and attached again so that block order follows the backup's.
            var resequence: [TablePlan.Kept]
            var drop: [String]
            var download: [String]
            var drop_bytes: Int64
            var download_bytes: Int64
            var refused: String?
            var identity: String
            var drift: TablePlan.Drift?
            /// The live table's unfinished mutations the restore kills first (`--kill-mutations`).
            var kill_mutations: [TablePlan.Mutation]
            /// The partitions the restore covers, when only some (`--partitions`, or a backup made
            /// with it); absent for every partition.
            var partitions: String?
            /// Live partitions the backup has no part of: all their parts are dropped.
            var partitions_dropped: [String]
        }

        public struct Totals: Encodable, Sendable {
            var tables: Int
            var touched: Int
            var unchanged: Int
            var refused: Int
            var create: Int
            var keep: Int
            var resequence: Int
            var drop: Int
            var download: Int
            var drop_bytes: Int64
            var download_bytes: Int64
        }

        var backup: String
        var source: String
        var complete: Bool
        var refused: String?
        /// False when the backup has no `current_parts` (made by clickhouse-backup): the plan
        /// compared the backup with the live state only.
        var three_way: Bool
        var tables: [Table]
        var totals: Totals
        var disks: [DiskCheck]
    }

    public static func json(_ plan: RestorePlan, backup: String, source: BackupLocation, threeWay: Bool) -> JSON {
        let tables = plan.tables.map {
            JSON.Table(database: $0.database, table: $0.table, create: $0.create, create_database: $0.createDatabase,
                       recreate: $0.recreate, keep: $0.keep,
                       resequence: $0.resequence.map { TablePlan.Kept(backup: $0.backup, live: $0.live, bytes: $0.bytes) }, drop: $0.drop.map(\.name), download: $0.download.map(\.name),
                       drop_bytes: $0.dropBytes, download_bytes: $0.downloadBytes, refused: $0.refused,
                       identity: $0.identity, drift: $0.drift, kill_mutations: $0.killMutations,
                       partitions: $0.partitions, partitions_dropped: $0.partitionsDropped)
        }
        return JSON(backup: backup, source: source.rawValue, complete: plan.isComplete, refused: plan.refused,
                    three_way: threeWay, tables: tables, totals: totals(plan), disks: plan.disks)
    }

    static func totals(_ plan: RestorePlan) -> JSON.Totals {
        let touched = plan.tables.filter { !$0.isNoOp && $0.refused == nil }
        return JSON.Totals(
            tables: plan.tables.count, touched: touched.count,
            unchanged: plan.tables.filter(\.isNoOp).count, refused: plan.refusedTables.count,
            create: plan.tables.filter(\.create).count, keep: plan.tables.reduce(0) { $0 + $1.keep.count },
            resequence: plan.tables.reduce(0) { $0 + $1.resequence.count },
            drop: plan.tables.reduce(0) { $0 + $1.drop.count }, download: plan.tables.reduce(0) { $0 + $1.download.count },
            drop_bytes: plan.tables.reduce(0) { $0 + $1.dropBytes },
            download_bytes: plan.tables.reduce(0) { $0 + $1.downloadBytes })
    }

    /// One line per touched or refused table, then drift, totals and disk needs.
    public static func text(_ plan: RestorePlan, backup: String, source: BackupLocation, threeWay: Bool) -> String {
        var lines: [String] = ["plan for backup \(backup) (\(source.rawValue))"]
        for table in plan.tables where !table.isNoOp {
            let name = "\(table.database).\(table.table)"
            if let refused = table.refused {
                lines.append("  \(name): REFUSED: \(refused)")
                continue
            }
            var what: [String] = []
            if table.createDatabase { what.append("create database") }
            if table.create { what.append("create table") }
            if table.recreate { what.append("drop and recreate table") }
            if !table.killMutations.isEmpty {
                what.append("kill \(table.killMutations.count) unfinished mutation(s) (\(table.killMutations.map(\.id).joined(separator: ", ")))")
            }
            if !table.keep.isEmpty { what.append("keep \(table.keep.count)") }
            if !table.resequence.isEmpty { what.append("re-sequence \(table.resequence.count) (kept, attached again in the backup's order)") }
            if !table.drop.isEmpty { what.append("drop \(table.drop.count) (\(bytes(table.dropBytes)))") }
            if !table.download.isEmpty { what.append("download \(table.download.count) (\(bytes(table.downloadBytes)))") }
            var line = "  \(name)" + (table.partitions.map { " (partitions \($0))" } ?? "") + ": " + what.joined(separator: ", ")
            if let drift = table.drift, !drift.addedNames.isEmpty || !drift.goneNames.isEmpty {
                line += "; since the backup: \(drift.addedNames.count) part(s) added, \(drift.goneNames.count) merged away or dropped"
            }
            lines.append(line)
            if !table.partitionsDropped.isEmpty {
                let list = table.partitionsDropped.prefix(10).joined(separator: ", ") + (table.partitionsDropped.count > 10 ? ", ..." : "")
                lines.append("    drops whole partition(s) the backup has no part of: \(list) (\(table.partitionsDropped.count)). If the backup holds only some partitions (clickhouse-backup create --partitions), restore with the same --partitions")
            }
        }
        let totals = totals(plan)
        if totals.unchanged > 0 { lines.append("  \(totals.unchanged) table(s) already equal to the backup") }
        lines.append("totals: \(totals.touched) table(s) to change (\(totals.create) to create), keep \(totals.keep) part(s), re-sequence \(totals.resequence), drop \(totals.drop) (\(bytes(totals.drop_bytes))), download \(totals.download) (\(bytes(totals.download_bytes))); \(totals.refused) refused")
        for disk in plan.disks {
            lines.append("disk \(disk.disk): needs \(bytes(disk.needed)) + margin \(bytes(disk.margin)); free \(bytes(disk.free)) + \(bytes(disk.freedByDrops)) freed before downloads: \(disk.enough ? "enough" : "NOT ENOUGH")")
        }
        if !threeWay {
            lines.append("note: the backup has no current_parts (made by clickhouse-backup): the plan compared it with the live state only")
        }
        if let refused = plan.refused { lines.append("REFUSED: \(refused)") }
        return lines.joined(separator: "\n")
    }

    public static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

import Foundation
