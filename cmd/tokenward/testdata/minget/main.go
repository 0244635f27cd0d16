// Command minget is the baseline of BenchmarkCLISecretGet: the least a Go
// program does for `tokenward secret get P/E/N` — one authenticated GET with
// net/http, the JSON answer decoded, the value printed — so the benchmark
// can show what the CLI costs beyond that.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

func main() {
	if err := get(os.Getenv("TOKENWARD_ADDR"), os.Getenv("TOKENWARD_TOKEN"), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "minget:", err)
		os.Exit(1)
	}
}

func get(addr, token, path string) error {
	req, err := http.NewRequest("GET", addr+"/v1/secrets/"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	var s struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(s.Value)
	return err
}
