/// A configuration problem, naming the key (as `section.key`) or the environment variable.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public let key: String?
    public let message: String
    /// The file the value came from, when it came from one.
    public let file: String?

    public init(key: String?, message: String, file: String? = nil) {
        self.key = key
        self.message = message
        self.file = file
    }

    public var description: String {
        var text = "configuration error"
        if let file { text += " in \(file)" }
        if let key { text += ": \(key)" }
        return text + ": \(message)"
    }
}
