using Microsoft.Extensions.Configuration;
using OpenAI;

var config = new ConfigurationBuilder().AddEnvironmentVariables().Build();
var stripeKey = config["Stripe:SecretKey"];
var client = new OpenAIClient("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");
var password = Environment.GetEnvironmentVariable("DB_PASSWORD");
Console.WriteLine(stripeKey?.Length);
