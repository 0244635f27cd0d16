// legacy connector
var mysql = require('mysql');
var connection = mysql.createConnection({
  host     : 'mysql.internal',
  user     : 'legacy',
  password : 'tundra&1922',
  database : 'crm'
});
const amqpUrl = 'amqp://worker:lu4Nyn^mf2J@rabbit.internal:5672/';
module.exports.smtp = { auth: { user: 'noreply@acme.io', pass: 'NwVtgiluuYFvN2' } };
const sig = crypto.createHmac('sha256', '9ObsQ7WWnanYn9Yhg6MROGb3RNTdBiAR').update(body).digest('hex');
var pwd = 'your-password-here';
var token = 'xxxxxxxxxxxxxxxxxxxx';
var hash = 'beeeac0c155e33e7e3a06f89e7d850a5a7707e5c';
