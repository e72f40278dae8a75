/// The one error type of the archive boundary (libarchive): what was wrong, in which archive,
/// and for which entry. Every refusal leaves nothing written outside the target folder.
public struct ArchiveError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// libarchive could not read the stream: truncated, corrupt, or not a tar archive.
        case corrupt
        /// An entry's path is absolute after stripping, holds `..`, or is empty.
        case unsafePath
        /// A symbolic or hard link, a device, or another non-regular entry.
        case unsupportedEntry
        /// An entry belongs to a part this archive is not expected to hold.
        case unexpectedPart
        /// A wanted part was not in the archive.
        case missingPart
        /// Writing the extracted files failed (disk full, permissions).
        case localFile
        /// Writing an archive failed.
        case write
    }

    public let kind: Kind
    public let archive: String
    public let entry: String?
    public let message: String

    public init(kind: Kind, archive: String, entry: String? = nil, message: String) {
        self.kind = kind
        self.archive = archive
        self.entry = entry
        self.message = message
    }

    public var description: String {
        var text = "archive \(archive)"
        if let entry { text += ", entry '\(entry)'" }
        return text + ": \(message)"
    }
}
