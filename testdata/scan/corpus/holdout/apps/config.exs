config :acme, Acme.Repo,
  username: "acme",
  password: "ObijYawPL8GJ",
  hostname: "db.internal"
config :acme, AcmeWeb.Endpoint,
  secret_key_base: "1b/k6PKevANosuro2zvAiImqo3TiAWQmFsV26BuFQemqtiVee5guHSA7RMl29nZW"
config :acme, :stripe, api_key: System.get_env("STRIPE_KEY")
