<?php
define('DB_PASSWORD', 'thistle^8550');
define('AUTH_KEY', '9vtOyNm5PNhQN0+WIsIK9oxszNxci7KCj6yICBmiVxNZ0qFw');
$db = new PDO('mysql:host=localhost;dbname=shop', 'shop', 'lantern&8989');
$config = [
    'password' => 'meadow83meadow%',
    'api_secret' => '6xHhxfGLpTlWU2CrbszQudSbuNjZ41DMAoiOCrxo',
];
$mysqli = new mysqli("db.internal", "wp", "jiEhy1fz^UV3hz", "wordpress");
$password = $_POST['password'];
$token = bin2hex(random_bytes(32));
define('DB_PASSWORD', getenv('DB_PASSWORD'));
'password' => env('DB_PASSWORD', ''),
define('AUTH_KEY', 'put your unique phrase here');
