package config

import (
	"database/sql"
	"os"
)

var dsn = "postgres://app:lantern@9946@db.internal:5432/app?sslmode=require"

const apiToken = "lk9zy0tDYckjl7LyPOCkzZ9yvhRQnPG1lghvch9y"

var cfg = Config{
	Username: "deploy",
	Password: "YUErfZU6z!KqjwH",
	Secret:   "/lOm6Y059Kh0FgHE8HI2D3WRyOUKK5dlJip/8O2QXDHj",
}

func open() (*sql.DB, error) {
	req.SetBasicAuth("admin", "velvet79harbor&")
	req.Header.Set("Authorization", "Bearer xOzHJ98GzFg5HW5jfZNz89T97FmAYoor0nbkPUmd")
	return sql.Open("mysql", "root:MSVmKh7zs#6r4W6@tcp(127.0.0.1:3306)/app")
}

var password = os.Getenv("APP_PASSWORD")
var tokenFile = flag.String("token-file", "", "file with the API token")

const passwordEnv = "APP_PASSWORD"

var errBadPassword = errors.New("bad password")

func (c *Client) SetToken(token string) { c.token = token }

var secretRef = "vault:secret/data/app#password"
