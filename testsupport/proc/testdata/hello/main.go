// Command hello is the program that proc's Binary tests build: it greets whom
// HELLO_NAME names.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello,", os.Getenv("HELLO_NAME"))
}
