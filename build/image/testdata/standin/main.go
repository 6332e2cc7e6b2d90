// Command standin stands for qscale in the image builder's tests where only the image's
// layout matters, not what the binary does.
package main

import "fmt"

var version = "dev"

func main() { fmt.Println("standin", version) }
