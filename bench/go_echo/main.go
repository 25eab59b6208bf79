// An AudioSocket echo server the way users of the Go library most Asterisk users pick
// (CyCoreSystems/audiosocket) write one: a goroutine per call that reads the UUID, then each
// message and writes every audio message straight back. Its modules cannot be fetched here, so the
// library's framing is written out below with the same work per message as its NextMessage and
// SlinMessage: a read of the 3-byte header, a new buffer and a read for the payload, the message
// joined, a new message built for the reply, one write. No pacing: the echo answers at once.
//
//	go build -o echo . && GOMAXPROCS=1 taskset -c 0 ./echo -port 9092
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
)

const (
	kindHangup = 0x00
	kindID     = 0x01
	kindSlin   = 0x10
)

// message is one AudioSocket message: kind, 16-bit big-endian length, payload.
type message []byte

func (m message) kind() byte { return m[0] }

func (m message) payload() []byte {
	if binary.BigEndian.Uint16(m[1:3]) == 0 {
		return nil
	}
	return m[3:]
}

// nextMessage reads one message: the header, then a payload of the length it gives.
func nextMessage(r io.Reader) (message, error) {
	header := make([]byte, 3)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, fmt.Errorf("failed to read header: %w", err)
	}
	size := binary.BigEndian.Uint16(header[1:])
	if size == 0 {
		return header, nil
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, fmt.Errorf("failed to read payload: %w", err)
	}
	return append(header, payload...), nil
}

// slinMessage builds an audio message (kind 0x10) around pcm.
func slinMessage(pcm []byte) message {
	out := make([]byte, 3, 3+len(pcm))
	out[0] = kindSlin
	binary.BigEndian.PutUint16(out[1:], uint16(len(pcm)))
	return append(out, pcm...)
}

func handle(c net.Conn) {
	defer c.Close()
	defer c.Write([]byte{kindHangup, 0, 0}) // a hangup message before closing, as the library's examples do
	first, err := nextMessage(c)
	if err != nil || first.kind() != kindID || len(first.payload()) != 16 {
		return
	}
	for {
		m, err := nextMessage(c)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				log.Println(err)
			}
			return
		}
		switch m.kind() {
		case kindHangup:
			return
		case kindSlin:
			if _, err := c.Write(slinMessage(m.payload())); err != nil {
				return
			}
		}
	}
}

func main() {
	port := flag.Int("port", 9092, "TCP port to listen on (127.0.0.1)")
	flag.Parse()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Println("accept:", err)
			continue
		}
		go handle(c)
	}
}
