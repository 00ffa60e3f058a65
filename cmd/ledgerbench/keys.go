package main

import "github.com/assignment-ledger/ledger/keyring"

// benchKEK is the bench's key-encryption key: its databases are
// throwaway, and every phase must open what the others sealed.
const benchKEK = "bGVkZ2VyIGJlbmNoIEtFSywgdGhyb3dhd2F5IGRhdCE="

func benchKeyring() *keyring.Keyring {
	kek, err := keyring.ParseKEK(benchKEK)
	if err != nil {
		panic(err)
	}
	kr, err := keyring.New(kek)
	if err != nil {
		panic(err)
	}
	return kr
}
