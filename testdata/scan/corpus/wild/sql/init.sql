CREATE USER report WITH PASSWORD 'meadow98meadow^';
ALTER USER app IDENTIFIED BY "1nYEZ9GlG?Yaa";
CREATE LOGIN etl WITH PASSWORD = 'ejYWo6oSc-X4ANC';
GRANT ALL ON shop.* TO 'shop'@'%' IDENTIFIED BY 'Nimbus?8251';
INSERT INTO users (email, password_hash) VALUES ('a@acme.io', '$2b$12$ShP88xbjV0fhZ7bDkJUvzFjlQcE30peXmnRZ5QW8W5LUehJEJ0ymv');
ALTER TABLE users ADD COLUMN password VARCHAR(255) NOT NULL;
CREATE USER readonly WITH PASSWORD :'readonly_password';
UPDATE settings SET value = 'x' WHERE key = 'api_token';
