std::string password = "L7Axp9ucQsC0lz";
const std::string kApiToken{"0xKF9bI5NOB0Ml6CmQXBeD1azOyqdVcAyw8VQTQ3"};
