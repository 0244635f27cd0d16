#define API_KEY "rUkjMeWLZGDIWh7eBERjPZthNbWHMnIP"
#define WIFI_PASSWORD "juniper49saffron_"
#define PASSWORD_MAX_LEN 64
static const char *token = NULL;
