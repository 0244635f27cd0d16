<?php
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp_prod' );
define( 'DB_PASSWORD', 'iEaUx6Y2OCXo' );
define( 'SECURE_AUTH_KEY',  'syeJyoN+aIG+9w31zoAXa0pIxICBEaLz1kw0yzfBjcaxVed0P9kCIhramhynkFrl' );
define( 'NONCE_SALT',       '4I/+ffvaP8aZEOeQw+UlAKONLC1EehjPYW0CluCz2ol5g9IjXmCeRwXhHvARtruV' );
define( 'WP_DEBUG', false );
