import os

import gitlab
import requests

GH_FINE_GRAINED = "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"
GL = gitlab.Gitlab("https://gitlab.acme.io", private_token=os.environ["GITLAB_TOKEN"])
BITBUCKET_APP_PASSWORD = "ATBBUk7PoJVs1QCJGbU5zd6fOZu7KcQoKUkY"
JIRA = requests.Session()
JIRA.auth = ("bot@acme.io", "ATATT3xFfGF0KZu-fI2g2dy80Bspl_FGJhgbm7IvZ9G3UkkeJwPgxtqo8H0ZjasDuZ4RJW1hAj7fb1eEozhGMk5phw_1KQY3Rri1imNKtEepuj-726c8cmLbgRvKgp6eH2nzxDsVDLes6IEkrvpyS0KpDK_FidcW9N_t4X7hufYD_ENZbGbyAed__Ny_t07H")
GITEA_TOKEN = "bd556413f24e557a1108661f087d4af3d2d41494"
