package com.acme.payments;

import com.braintreegateway.BraintreeGateway;
import com.squareup.square.SquareClient;

public final class Gateways {
    // FIXME: read from Vault
    private static final String BRAINTREE = "access_token$production$64euiu7sh797kc33$39061ca36d399e25b36cf61eb15fe6f7";
    private static final String SQUARE = "EAAAvZp23XU4XP32lw0qDtdpqnl3SMLPE5yoPAZUJ3d87hIG4CyDQOJt1XKnOLNv";

    static BraintreeGateway braintree() {
        return new BraintreeGateway(BRAINTREE);
    }

    static SquareClient square() {
        return new SquareClient.Builder().accessToken(System.getenv("SQUARE_TOKEN")).build();
    }
}
