// Package types holds the data of package backend that front ends share
// with the engine: container records and the options of every operation,
// events, images, volumes, mounts, the limits of the numbers the engine
// takes, and the pure parsers and checks of a container's settings. It
// imports no containerd client, gRPC, protobuf or CNI code, so that a
// client (the engine CLI) can use it without paying for them at start-up;
// package backend aliases every name here, so that embedders and the
// engine keep one definition of each.
//
// Everything here is plain data and pure functions: safe for concurrent
// use, zero values as documented on each type.
package types
