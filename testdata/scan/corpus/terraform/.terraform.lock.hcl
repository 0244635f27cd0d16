# This file is maintained automatically by "terraform init".
provider "registry.terraform.io/hashicorp/aws" {
  version     = "5.80.0"
  constraints = "~> 5.0"
  hashes = [
    "h1:oQVorAS02WTouxaH520EP3bQkbfBy8wkIqQD0KOF+aG=",
    "zh:376552b4ec85c0b5daa28e9d535f2b4d602ea7ddb90d2e6b6b92f8f6f81664b2",
    "zh:80f2371d7692ff2ec6494e2c6dee48f282819387e588ccfe1c7be04f553f7912",
    "zh:6b976011ea1924c1f42f54ebc0c58dfc0d7ebba1c53f8dc466afde506d2d6a99",
  ]
}
