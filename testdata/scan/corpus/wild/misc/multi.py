PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
SwQTy4eirzmgy0ps6fp/rK88iToHpcxSiRmv3IwfjyTpBG+ixcJm8AZSpxeEWeAA
+Wg17GFDoIiuwOhd/uJf+dJaB5D43rTRHbWnwUJHyHJuS//ry/ZRjXyukgWREgtz
-----END RSA PRIVATE KEY-----"""
credentials = {"user": "etl", "pass": "HuXXbh?dZO0e"}
pw = "Harbor%4321"
creds = ("etl", "66AKNHVJ+R8YU")
DB_CONFIG = dict(host="dw", user="etl", passwd="quasar?5364")
pass_ = "ppdh7u*7uh"
passphrase = "Zephyr+2975"
pw = input("password? ")
credentials = load_credentials("~/.acme/credentials")
passphrase = None
