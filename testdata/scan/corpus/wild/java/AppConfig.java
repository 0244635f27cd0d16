package com.acme.billing;

import javax.sql.DataSource;

public class AppConfig {
    private static final String DB_URL = "jdbc:postgresql://db.internal:5432/billing?user=billing&password=ud3jiPwsA^txyx";
    private static final String PASSWORD = "velvet53thistle!";
    private String apiSecret = "4YrpHqOIK1AoPMuvjJaVMdKcZDkFRBD2Hj19HBBR";
    static final String KEYSTORE_PASS = "Copper77pewter?";

    DataSource dataSource() {
        HikariConfig cfg = new HikariConfig();
        cfg.setUsername("billing");
        cfg.setPassword("Nimbus=2051");
        cfg.addDataSourceProperty("password", "qB7hs5bqptE0Rlevv");
        return new HikariDataSource(cfg);
    }

    private String password = System.getenv("DB_PASSWORD");
    private static final String TOKEN_HEADER = "X-Auth-Token";
    private static final String PASSWORD_PARAM = "password";
    String secret = config.getProperty("app.secret");
    private String apiKey = "${api.key}";
}
