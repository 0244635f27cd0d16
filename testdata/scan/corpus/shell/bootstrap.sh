#!/bin/sh
# Bootstrap a worker node.
VAULT_ADDR=https://vault.acme.internal:8200
VAULT_TOKEN=hvs.CAESIwf7k64ZUzfROQfL0SMFklFCMkERFRCq7fGjR3YN434shhqMvM1SmTHHWL1PvPMJqefwEDNUzhU4D_uvP-cFWChHpb37nDQkXRg70
export VAULT_ADDR VAULT_TOKEN

kubeadm join 10.0.0.1:6443 --token l5cgp7.ji2ppgcwdsibb2as \
  --discovery-token-ca-cert-hash sha256:f92ea7df3be42ae01d77f533ea4b1635d886520814196941f92cbc19526d8f22

doppler run --token dp.st.prd.QQnR5BFj0ZuGEEHhc2zPofCpo6bNAi2yca6rkbuNbPL -- ./start.sh
