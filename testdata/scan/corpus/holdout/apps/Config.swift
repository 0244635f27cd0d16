enum Config {
    static let apiKey = "sBF6I8YIsv9VboYQKY5JjeSX8iQ7hS6tqh90Lf1f"
    static let clientSecret: String = "9YcUE97OcGqrIKAOPa46m6VQUReQ0il1"
    static let keychainService = "io.acme.app.token"
}
