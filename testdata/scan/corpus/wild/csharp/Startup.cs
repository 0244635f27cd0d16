using System.Data.SqlClient;

namespace Acme.Web
{
    public class Startup
    {
        private const string ConnectionString = "Server=sql01;Database=Shop;User Id=shop;Password=quasar=6372;";
        private const string ApiKey = "BwdxEVPrbbI5ic9FJ8Lyu8TDTW6fL2r0";
        private static readonly string ClientSecret = "gHONxfqveHuXCdkH3lSW88Gj+RFRBau9Yvab9Hjs";
        var credential = new NetworkCredential("svc_backup", "Saffron15copper^");
        var smtp = new SmtpClient("smtp.acme.io") { Credentials = new NetworkCredential("mailer", "lantern91orchid&") };

        private string password = Environment.GetEnvironmentVariable("DB_PASSWORD");
        private const string PasswordClaim = "pwd";
        var token = await GetTokenAsync();
        private string apiKey = Configuration["ApiKey"];
    }
}
