package com.acme.mobile

object Secrets {
    const val API_KEY = "1oXL5LVfwFjkaZruSvtn9dDlmjaNk2jo"
    val clientSecret = "ovoZppAAckFCmFA3bZMOT1e/fZ9xekG8HuLRV+HX"
    private const val SIGNING_PASSWORD = "hsLfFu%jttyh"
    val password: String = BuildConfig.STORE_PASSWORD
    const val TOKEN_PREF = "pref_token"
    val apiKey = System.getenv("API_KEY") ?: ""
}
