provider "aws" {
  region = "eu-west-1"
}
resource "aws_db_instance" "main" {
  engine   = "postgres"
  username = "dbadmin"
  password = "ClT3BwS0EoZPGlM0p"
}
provider "datadog" {
  api_key = "f2c52b4e9fca26c971ab9a050c9e3520"
  app_key = "67d2c562e02fd14fd6401b469395dbc28ed91d71"
}
resource "azurerm_sql_server" "sql" {
  administrator_login_password = "granite71zephyr#"
}
variable "db_password" {
  type      = string
  sensitive = true
}
resource "aws_db_instance" "replica" {
  password = var.db_password
  kms_key_id = aws_kms_key.db.arn
}
  password = random_password.db.result
  secret_string = jsonencode({ password = random_password.db.result })
