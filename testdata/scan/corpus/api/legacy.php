<?php
$config = [
    'db_password' => '3W3XpwYdDMssDXpU',
    'db_user' => 'legacy',
    'api_token' => getenv('LEGACY_API_TOKEN'),
    'encryption_key' => 'gBdAy/Q5qpWh4a3G4YVwGgXd9NWWRPeev36WHBPn0Hjq',
];
define('AUTH_SALT', 'put your unique phrase here');
