const String apiSecret = 'yPUblK4P8ebc27XvSjg2UQXPO29v8zO87SjAtiHr';
final password = TextEditingController();
