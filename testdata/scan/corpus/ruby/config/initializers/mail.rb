ActionMailer::Base.smtp_settings = {
  user_name: "apikey",
  password: "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",
  address: "smtp.sendgrid.net",
  port: 587,
  authentication: :plain,
}

Mailgun.configure do |config|
  config.api_key = "key-24261b06dc60a40871c688c2d7d9f277"
end

Rails.application.credentials.dig(:mailchimp, :api_key)
