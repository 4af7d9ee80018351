package vhd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/e2eimage/e2eimage/vhd"
)

// A guest disk of 5 MiB: three blocks, of which only the first and the
// (partial) last hold data.
func exampleDisk() []byte {
	raw := make([]byte, 5<<20)
	copy(raw, "boot sector")
	copy(raw[4<<20:], "data in the last, partial block")
	return raw
}

func ExampleNewWriter() {
	raw := exampleDisk()
	// The allocation is known up front: the file is written front to back.
	first := vhd.FullBitmap()
	last := make(vhd.Bitmap, vhd.BitmapSize)
	last.Set(0) // only the sector that holds data
	l := &vhd.Layout{
		Size:      int64(len(raw)),
		Allocated: []vhd.Bitmap{first, nil, last},
		Timestamp: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var out bytes.Buffer
	w, err := vhd.NewWriter(&out, l)
	if err != nil {
		log.Fatal(err)
	}
	block := make([]byte, vhd.BlockSize)
	for i, bm := range l.Allocated {
		if bm == nil {
			continue
		}
		clear(block)
		copy(block, raw[i*vhd.BlockSize:]) // an encryptor would transform this
		if err := w.WriteBlock(i, block); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("predicted:", l.FileSize(), "written:", out.Len())
	// Output: predicted: 4203008 written: 4203008
}

func ExampleOpen() {
	var file bytes.Buffer
	raw := exampleDisk()
	if err := vhd.WriteFixed(&file, bytes.NewReader(raw), int64(len(raw))); err != nil {
		log.Fatal(err)
	}

	img, err := vhd.Open(bytes.NewReader(file.Bytes()), int64(file.Len()))
	if errors.Is(err, vhd.ErrNotVHD) {
		log.Fatal("a raw image: read it directly")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Type(), img.Size(), "bytes in", img.NumBlocks(), "blocks")
	for b, err := range img.Blocks() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("block", b.Index, "full:", b.Full)
	}
	msg := make([]byte, 31)
	if _, err := img.ReadAt(msg, 4<<20); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", msg)
	// Output:
	// fixed 5242880 bytes in 3 blocks
	// block 0 full: true
	// block 1 full: true
	// block 2 full: true
	// data in the last, partial block
}

func ExampleImage_Check() {
	var file bytes.Buffer
	l := &vhd.Layout{Size: 2 << 20, Allocated: []vhd.Bitmap{vhd.FullBitmap()}}
	kh := vhd.ComputeKeyHash([32]byte{}, make([]byte, 64))
	l.KeyHash = &kh // an encrypted disk...
	w, _ := vhd.NewWriter(&file, l)
	_ = w.WriteBlock(0, make([]byte, vhd.BlockSize)) // ...whose data was never encrypted
	_ = w.Close()

	img, err := vhd.Open(bytes.NewReader(file.Bytes()), int64(file.Len()))
	if err != nil {
		log.Fatal(err)
	}
	rep, err := img.Check(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.OK(), rep.ZeroPresentSectors, rep.ZeroPresentBlocks)
	// Output: false 4096 [0]
}

func ExampleNewStreamReader() {
	var file bytes.Buffer
	l := &vhd.Layout{Size: 4 << 20, Allocated: []vhd.Bitmap{nil, vhd.FullBitmap()}}
	w, _ := vhd.NewWriter(&file, l)
	_ = w.WriteBlock(1, bytes.Repeat([]byte{7}, vhd.BlockSize))
	_ = w.Close()

	// Any io.Reader will do: a pipe, an HTTP body, stdin.
	sr, err := vhd.NewStreamReader(io.MultiReader(&file))
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, vhd.BlockSize)
	for {
		b, err := sr.Next(buf)
		if err == io.EOF {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		fmt.Println("block", b.Index, "first byte", buf[0])
	}
	// Output: block 1 first byte 7
}
