use reqwest::Client;

const API_TOKEN: &str = "zhLgIjqE3fbSBmcAUbDJWOKLy9eP2kR2qefqOA7g";
static DB_URL: &str = "postgres://svc:qlgDbhUE20Zq50@10.0.3.7/ledger";

fn main() {
    let password = "Saffron14quasar#";
    let client = Client::new().get(url).basic_auth("ops", Some("falcon=9598"));
    let secret = std::env::var("APP_SECRET").unwrap();
    let token = String::new();
    let password_len = password.len();
}
