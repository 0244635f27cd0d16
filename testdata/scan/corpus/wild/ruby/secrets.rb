Rails.application.configure do
  config.action_mailer.smtp_settings = {
    user_name: "apikey",
    password: "Copper15lantern&",
    address: "smtp.acme.io"
  }
end
Stripe.api_key = ENV["STRIPE_KEY"]
REDIS_URL = "redis://:7FllyrP&fp0@cache.internal:6379/0"
client = Octokit::Client.new(access_token: "72zU3CZ7NIZJVbTwanpQ96ONuT12fRZ8cD98WHpE")
AWS_SECRET = 'RqZ6bj7JXGcNRVZLt6eJ4TClI++QPPnTnrs6OR9N'
:password => 'NEbkoQHLQVLoU9',
password = ENV.fetch("DB_PASSWORD")
token = SecureRandom.hex(32)
secret: Rails.application.credentials.secret_key_base
