/// The tool's version, reported by `inplace --version`, recorded in journals and backups.
public enum InplaceVersion {
    public static let current = "0.1.0"
}
