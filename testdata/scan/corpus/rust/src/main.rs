use std::env;

// Temporary: hard-coded until the config service is up.
const SENDGRID_KEY: &str = "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";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = env::var("GITHUB_TOKEN")?;
    let api_key = env::var("API_KEY").unwrap_or_default();
    let secret_len = 32;
    println!("{} {} {}", token.len(), api_key.len(), secret_len);
    Ok(())
}
