region               = "eu-central-1"
cloudflare_api_token = "Iv1lKJjmIQdWll4jqs3G9EG14opcGPr1GftUBwZQ"
hcloud_token         = "AR8erUjgJXK2TsALDArIqzwxjXRyDsiKRjiQA5DMyQI48yqc4Myj8ucJNtylFVAl"
linode_token         = "7032b7e3dcf5ee0c1f158d70f7bdb21326398560f04d01e55524fb48f7a7cf39"
instance_count       = 3
ami                  = "ami-bbcbe63ca232a897d"
