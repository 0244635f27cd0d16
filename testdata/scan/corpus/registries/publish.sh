#!/usr/bin/env bash
set -euo pipefail
export CARGO_REGISTRY_TOKEN=ciorezHLlJCxymL5RWKe2u8y9S7bS1Tw7Fb
export DOCKERHUB_TOKEN=dckr_oat_vpdF9FH6S5IqP197Rp0kteevmVhWWsHo
export ARTIFACTORY_API_KEY=AKCp8inMPLn1xPvunyS1uBkaMEKyqe9gZ4gURczMBYlsk5UksbLQjSjIwsFR51UXRFpM7CmKb
export CLOJARS_PASSWORD=CLOJARS_b3gi2hpadsw3xrtqo1k6oujxn0sj7msfhnge74xj8mml9wyxhnk9qbvxu6n8
cargo publish
dotnet nuget push pkg.nupkg --api-key "$NUGET_API_KEY" --source https://api.nuget.org/v3/index.json
