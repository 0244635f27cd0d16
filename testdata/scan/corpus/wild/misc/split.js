// tokens split or quoted in unusual ways
const stripeKey = "sk_live_" + "kEsAzwi0ztpIo4N96x5cD8rG";
const apiToken = ["Infi0pWtJiCdqp0jhJEu", "ZkGyeRvnyi6QL5DBOIdz"].join("");
const SECRET = `RDZ2QCxnsSa7fhj1DWXfnKEYOrOibW6kLYtIpLSm`;
const conf = {"db_password":"CJTlXzQ6C?qX3n","db_user":"app"};
const escaped = "{\"password\":\"quasar92pewter*\"}";
const label = "Password: " + user.password;
const secretName = `${env}-db-secret`;
