package vhdcrypt

import "errors"

// Errors the image verbs return (wrapped, with what was being done); test
// for them with errors.Is. An input the encryptor does not read gets the
// typed error of package disk, wrapped unchanged (disk.ErrUnsupportedFormat,
// disk.ErrNoPartitionTable, disk.ErrBackingFile, disk.ErrEncrypted,
// disk.ErrNeedRandomAccess, disk.ErrMalformed...); format-level problems of
// a VHD come from package vhd (*vhd.FormatError, vhd.ErrTruncated...),
// wrapped unchanged too.
var (
	// ErrAlreadyEncrypted: the input to EncryptImage is an encrypted VHD.
	// Encrypting it again would treat its ciphertext as plaintext (which
	// vhd-util copy silently does).
	ErrAlreadyEncrypted = errors.New("vhdcrypt: the image is already encrypted")

	// ErrNotEncrypted: the input to DecryptImage, VerifyKey or Check is
	// not an encrypted VHD (a raw image, a fixed VHD, or a dynamic VHD
	// without a key hash).
	ErrNotEncrypted = errors.New("vhdcrypt: the image is not encrypted")

	// ErrWrongKey: the DEK does not match the key hash stored in the
	// image. Nothing was decrypted.
	ErrWrongKey = errors.New("vhdcrypt: the key does not match the image's key hash")

	// ErrNeedSize: a raw (or fixed VHD) image arrives on a stream and no
	// size was declared with WithSize. The output's header, written first,
	// depends on the size.
	ErrNeedSize = errors.New("vhdcrypt: a raw image read from a stream needs its size declared (WithSize)")

	// ErrStreamSize: a stream did not hold the number of bytes its
	// declared size (WithSize) promised: it ended early, or went on after
	// the disk and its optional fixed-VHD footer.
	ErrStreamSize = errors.New("vhdcrypt: the stream's length does not match its declared size")

	// ErrFixedVHDStream: the size declared for a stream (WithSize) was its
	// length, but the stream is a fixed VHD whose last 512 bytes are its
	// footer, not disk data. Declare the disk size (the length minus 512)
	// or give the file.
	ErrFixedVHDStream = errors.New("vhdcrypt: the stream is a fixed VHD: declare its disk size (length - 512), not its length")

	// ErrTooLarge: the virtual size exceeds the VHD maximum, vhd.MaxSize
	// (2040 GiB).
	ErrTooLarge = errors.New("vhdcrypt: the image is larger than a VHD can be (2040 GiB)")

	// ErrEmpty: the input holds no bytes at all.
	ErrEmpty = errors.New("vhdcrypt: the input is empty")

	// ErrUsed: an Encryptor or Decryptor was asked to produce its output a
	// second time. Each produces it once; make a new one.
	ErrUsed = errors.New("vhdcrypt: the output was already produced")
)
