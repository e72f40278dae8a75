/// One difference between a live table and the backup (see `TableComparison`): small, Codable
/// (`inplace verify --json`), with a one-line description for operators.
public struct TableDifference: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// A backup part whose content the table lacks.
        case missing
        /// A live part whose content the backup lacks.
        case extra
        /// Equal content, but another row count than the backup records.
        case rows
        /// Equal content in the partition, in another block order.
        case order
        /// The table itself does not exist in the database.
        case missingTable = "missing_table"
        /// The live table is not of the MergeTree family while the backup's is: no parts to compare.
        case engine

        var rank: Int {
            switch self {
            case .missingTable, .engine: 0
            case .missing: 1
            case .extra: 2
            case .rows: 3
            case .order: 4
            }
        }
    }

    public var kind: Kind
    /// The partition id ("" for `missing_table` and `engine`).
    public var partition: String
    /// The backup's part (missing, rows, order), by its name in the backup.
    public var backupPart: String?
    /// The live part (extra, rows, order).
    public var livePart: String?
    /// The content identity concerned: the backup part's, else the live part's.
    public var identity: String?
    /// One line for operators.
    public var description: String

    /// The min block of the part the difference is about, to sort within a partition and kind.
    var sortKey: Int64

    enum CodingKeys: String, CodingKey {
        case kind, partition, identity, description
        case backupPart = "backup_part"
        case livePart = "live_part"
    }

    public init(kind: Kind, partition: String, backupPart: String?, livePart: String?, identity: String?,
                description: String) {
        self.kind = kind
        self.partition = partition
        self.backupPart = backupPart
        self.livePart = livePart
        self.identity = identity
        self.description = description
        sortKey = 0
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(kind: try container.decode(Kind.self, forKey: .kind),
                  partition: try container.decode(String.self, forKey: .partition),
                  backupPart: try container.decodeIfPresent(String.self, forKey: .backupPart),
                  livePart: try container.decodeIfPresent(String.self, forKey: .livePart),
                  identity: try container.decodeIfPresent(String.self, forKey: .identity),
                  description: try container.decode(String.self, forKey: .description))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(partition, forKey: .partition)
        try container.encode(backupPart, forKey: .backupPart)
        try container.encode(livePart, forKey: .livePart)
        try container.encode(identity, forKey: .identity)
        try container.encode(description, forKey: .description)
    }

    public static func == (lhs: TableDifference, rhs: TableDifference) -> Bool {
        (lhs.kind, lhs.partition, lhs.backupPart, lhs.livePart, lhs.identity, lhs.description)
            == (rhs.kind, rhs.partition, rhs.backupPart, rhs.livePart, rhs.identity, rhs.description)
    }

    private init(_ kind: Kind, partition: String, backup: TableComparison.Part?, live: TableComparison.Part?,
                 _ description: String) {
        self.init(kind: kind, partition: partition, backupPart: backup?.name, livePart: live?.name,
                  identity: backup?.identity ?? live?.identity, description: "partition \(partition): " + description)
        sortKey = (backup ?? live)?.minBlock ?? 0
    }

    static func missing(_ part: TableComparison.Part) -> TableDifference {
        .init(.missing, partition: part.partition, backup: part, live: nil,
              "the backup's part \(part.name) (\(shown(part.identity))) is not in the table")
    }

    static func extra(_ part: TableComparison.Part) -> TableDifference {
        .init(.extra, partition: part.partition, backup: nil, live: part,
              "live part \(part.name) (\(shown(part.identity))) is not in the backup")
    }

    static func rows(backup: TableComparison.Part, live: TableComparison.Part) -> TableDifference {
        .init(.rows, partition: backup.partition, backup: backup, live: live,
              "live part \(live.name) holds the content of the backup's part \(backup.name) (\(shown(backup.identity))) but \(live.rows ?? 0) rows where the backup records \(backup.rows ?? 0)")
    }

    static func order(backup: TableComparison.Part, live: TableComparison.Part, position: Int) -> TableDifference {
        .init(.order, partition: backup.partition, backup: backup, live: live,
              "the parts are not in the backup's block order: part \(position) by min block is \(live.name) (\(shown(live.identity))) where the backup has \(backup.name) (\(shown(backup.identity))); SELECT ... FINAL on Replacing and Collapsing engines may keep other rows")
    }

    /// A table in the backup that the database lacks.
    public static func missingTable(database: String, table: String, backupParts: Int) -> TableDifference {
        TableDifference(kind: .missingTable, partition: "", backupPart: nil, livePart: nil, identity: nil,
                        description: "table \(database).\(table) does not exist in the database (the backup has \(backupParts) part(s))")
    }

    /// A live table whose engine keeps no parts, where the backup's table is a MergeTree.
    public static func engine(live: String, backup: String) -> TableDifference {
        TableDifference(kind: .engine, partition: "", backupPart: nil, livePart: nil, identity: nil,
                        description: "the live table's engine \(live) is not of the MergeTree family; the backup's is \(backup)")
    }

    /// An identity as operators read it: a hash cut to 16 hex digits, or the CRC.
    static func shown(_ identity: String) -> String {
        if identity.hasPrefix("crc64:") { return "checksums.txt CRC-64 \(identity.dropFirst(6))" }
        guard !identity.isEmpty, identity.allSatisfy(\.isHexDigit) else { return identity }
        return identity.count > 16 ? "hash \(identity.prefix(16))…" : "hash \(identity)"
    }
}
