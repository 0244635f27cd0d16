// Command testchild is the child program the inject tests run: it prints
// secrets in many forms, waits for signals, reads stdin and inspects its
// mount file, so the runner is tested against a real process.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/tokenward/tokenward/internal/inject"
)

// writeSplit writes s a few bytes at a time, flushing each piece, so a value
// reaches the parent split across reads.
func writeSplit(f *os.File, s string) {
	for len(s) > 0 {
		n := min(len(s), 3)
		f.WriteString(s[:n])
		s = s[n:]
		time.Sleep(time.Millisecond) // let the parent read the piece alone
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testchild MODE [ARGS]")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "print": // print each named variable's value plainly and encoded
		for _, name := range args {
			v := os.Getenv(name)
			writeSplit(os.Stdout, "raw "+name+"="+v+"\n")
			writeSplit(os.Stderr, "\x1b[31merr "+name+"="+v+"\x1b[0m\n")
			writeSplit(os.Stdout, "b64 "+base64.StdEncoding.EncodeToString([]byte(v))+"\n")
			writeSplit(os.Stdout, "b64url "+base64.RawURLEncoding.EncodeToString([]byte(v))+"\n")
			writeSplit(os.Stdout, "b64stream "+base64.StdEncoding.EncodeToString([]byte("Authorization: "+v+"!"))+"\n")
			writeSplit(os.Stdout, "url "+url.QueryEscape(v)+"\n")
			j, _ := json.Marshal(map[string]string{name: v})
			writeSplit(os.Stdout, "json "+string(j)+"\n")
		}
	case "env": // print NAME=value or NAME unset
		for _, name := range args {
			if v, ok := os.LookupEnv(name); ok {
				fmt.Printf("%s=%s\n", name, v)
			} else {
				fmt.Printf("%s unset\n", name)
			}
		}
	case "exit":
		code, _ := strconv.Atoi(args[0])
		os.Exit(code)
	case "cat":
		buf := make([]byte, 4096)
		for {
			n, err := os.Stdin.Read(buf)
			os.Stdout.Write(buf[:n])
			if err != nil {
				return
			}
		}
	case "prompt": // a prompt without newline, then read the answer
		os.Stdout.WriteString("Password: ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Printf("got %d bytes\n", len(line))
	case "wait": // print ready, then wait for a signal with default handling
		fmt.Println("ready " + os.Getenv("GEN"))
		// Go's runtime dies of SIGTERM, SIGINT and SIGHUP with the signal's
		// status, as a C program would.
		time.Sleep(time.Hour)
	case "trap": // exit 0 on SIGTERM
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready " + os.Getenv("GEN"))
		<-ch
		fmt.Println("stopping " + os.Getenv("GEN"))
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "mount": // describe the mount file, then wait for a signal
		path := args[0]
		st, err := os.Stat(path) // #nosec G703 -- test child program: reads the path its test passes
		if err != nil {
			fmt.Println("mount missing")
			os.Exit(3)
		}
		fmt.Printf("mode=%o\n", st.Mode().Perm())
		data, _ := os.ReadFile(path) // #nosec G703 -- test child program: reads the path its test passes
		format := inject.Format(args[1])
		vals, err := inject.Decode(format, data)
		if err != nil {
			fmt.Println("mount unreadable")
			os.Exit(4)
		}
		names := make([]string, 0, len(vals))
		for n := range vals {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			h := sha256.Sum256([]byte(vals[n]))
			fmt.Printf("%s sha256=%s\n", n, hex.EncodeToString(h[:8]))
		}
		fmt.Println("ready")
		if len(args) > 2 && args[2] == "exit" {
			return
		}
		time.Sleep(time.Hour)
	default:
		fmt.Fprintln(os.Stderr, "testchild: unknown mode")
		os.Exit(2)
	}
}
