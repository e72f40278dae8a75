import Foundation

@testable import InplaceCore

/// A table compared by its contents, never by part names: per partition the rows and a checksum
/// of every row, and for engines that replace or collapse rows the answer of `SELECT ... FINAL`
/// (which depends on the order of the parts, not only on the rows).
struct TableContents: Equatable, CustomStringConvertible, Sendable {
    /// `partition id, count(), sum(cityHash64(*))`, one line per partition, in order.
    var partitions: String
    /// The `final` query's answer, when one was given.
    var final: String?

    /// The partitions, and of the FINAL answer its row count and its distinct rows after the key
    /// (`old x50`): enough to see which insert won.
    var description: String {
        guard let final else { return "partitions [\(partitions)]" }
        let rows = final.split(separator: "\n")
        var values: [String: Int] = [:]
        for row in rows { values[row.split(separator: "\t").dropFirst().joined(separator: " "), default: 0] += 1 }
        let summary = values.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
        return "partitions [\(partitions)], FINAL \(rows.count) rows: \(summary)"
    }

    /// The contents of `db.table`, or nil when the table does not exist. `final` is a query after
    /// its SELECT, `{table}` standing for `db.table FINAL`: `k, v FROM {table} ORDER BY k`.
    static func of(_ ch: ClickHouseClient, _ db: String, _ table: String, final: String? = nil) async throws -> TableContents? {
        let exists = try await ch.execute(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters: ["db": db, "t": table]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard exists == "1" else { return nil }
        let name = "\(ClickHouseSQL.identifier(db)).\(ClickHouseSQL.identifier(table))"
        let partitions = try await ch.execute(
            "SELECT _partition_id, count(), sum(cityHash64(*)) FROM \(name) GROUP BY 1 ORDER BY 1")
        var answer: String?
        if let final {
            answer = try await ch.execute("SELECT \(final.replacingOccurrences(of: "{table}", with: "\(name) FINAL"))")
        }
        return TableContents(partitions: partitions.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n", with: "; "), final: answer)
    }
}

/// Merge settings for tables whose parts must stay as inserted even after a restore starts
/// merges again (it does as each table ends): no merge is ever selected for parts over 1 byte.
let noMergeSettings = "SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1"
