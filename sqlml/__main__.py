from sqlml.cli import main

main()
