$password = "meadow_9661"
$secure = ConvertTo-SecureString "Zephyr-454" -AsPlainText -Force
$apiKey = '4IPu7vpwIDvGiZbV4zp4CroOZSoATx6x'
$headers = @{ Authorization = "Bearer T7BnhHTqM7IkcScdhoefmBU45Ac1Ucam8VvJfsHf" }
$cred = New-Object PSCredential("svc", (ConvertTo-SecureString "thistle_8708" -AsPlainText -Force))
$password = Read-Host -AsSecureString "Password"
$token = $env:API_TOKEN
$apiKey = Get-Secret -Name ApiKey -AsPlainText
$secure = ConvertTo-SecureString $password -AsPlainText -Force
