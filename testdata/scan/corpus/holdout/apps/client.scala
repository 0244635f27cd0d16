object Db {
  val password = "lantern17copper*"
  val url = s"jdbc:postgresql://db/app?user=app&password=Cobalt!9427"
  val token = sys.env("TOKEN")
}
