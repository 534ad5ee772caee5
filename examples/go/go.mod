module github.com/polytel/polytel/examples/go

go 1.26

require github.com/polytel/polytel/bindings/go v0.0.0

replace github.com/polytel/polytel/bindings/go => ../../bindings/go
